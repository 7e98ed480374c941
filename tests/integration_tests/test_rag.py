"""Retrieval-augmented generation with Bytez end to end, against the local server.

Documents are embedded with ``BytezEmbeddings`` into an ``InMemoryVectorStore``; a
retriever feeds ``ChatBytez`` in an LCEL chain, which is streamed.
"""

from __future__ import annotations

from langchain_core.documents import Document
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnablePassthrough
from langchain_core.vectorstores import InMemoryVectorStore

from langchain_bytez.chat_models import ChatBytez
from langchain_bytez.embeddings import BytezEmbeddings
from langchain_bytez.server import LocalBytezServer

DOCUMENTS = [
    Document(id="volcano", page_content="Volcanoes erupt molten lava and volcanic ash."),
    Document(id="lava", page_content="Lava from a volcano cools into volcanic rock."),
    Document(id="bread", page_content="Bake sourdough bread with flour, water and salt."),
    Document(id="tides", page_content="Ocean tides follow the pull of the moon."),
    Document(id="chess", page_content="In chess the queen moves in any straight line."),
]


def _format(docs: list[Document]) -> str:
    return "\n".join(f"[{doc.id}] {doc.page_content}" for doc in docs)


def test_rag_chain_retrieves_the_right_documents_and_streams(
    bytez_server: LocalBytezServer, bytez_api_key: str
) -> None:
    bytez_server.load_delay = 0.05
    embeddings = BytezEmbeddings(
        model="sentence-transformers/all-MiniLM-L6-v2",
        api_key=bytez_api_key,
        base_url=bytez_server.url,
        concurrency=4,
        normalize=True,
    )
    store = InMemoryVectorStore(embedding=embeddings)
    store.add_documents(DOCUMENTS)
    retriever = store.as_retriever(search_kwargs={"k": 2})

    question = "What comes out when a volcano erupts lava?"
    retrieved = retriever.invoke(question)
    assert {doc.id for doc in retrieved} == {"volcano", "lava"}

    model = ChatBytez(
        model="Qwen/Qwen2.5-0.5B-Instruct",
        api_key=bytez_api_key,
        base_url=bytez_server.url,
        max_tokens=24,
    )
    prompt = ChatPromptTemplate.from_messages(
        [
            ("system", "Answer from this context only:\n{context}"),
            ("human", "{question}"),
        ]
    )
    chain = (
        {"context": retriever | _format, "question": RunnablePassthrough()}
        | prompt
        | model
        | StrOutputParser()
    )
    pieces = list(chain.stream(question))
    assert len(pieces) > 1
    answer = "".join(pieces)
    assert answer.startswith(f'Hello! You said: "{question}')

    # What the chat model was really sent: the two volcano documents, nothing else.
    chat_runs = [
        r.json
        for r in bytez_server.requests
        if r.model_id == "Qwen/Qwen2.5-0.5B-Instruct" and r.method == "POST"
    ]
    system = chat_runs[-1]["messages"][0]
    assert system["role"] == "system"
    assert "[volcano]" in system["content"]
    assert "[lava]" in system["content"]
    for other in ("bread", "tides", "chess"):
        assert f"[{other}]" not in system["content"]
    assert chat_runs[-1]["messages"][1] == {"role": "user", "content": question}
