# %% [markdown]
# # 03 · Retrieval-augmented generation
#
# A small RAG pipeline, end to end, on Bytez models only:
#
# 1. a handful of short documents (written inline below);
# 2. split into chunks with `langchain-text-splitters`;
# 3. embedded with `BytezEmbeddings` into an `InMemoryVectorStore`;
# 4. the chunks nearest to a question are retrieved;
# 5. `ChatBytez` answers from them, **streamed**, and the sources are listed.
#
# With `BYTEZ_API_KEY` unset it runs against the local Bytez-compatible server, whose
# embeddings are hashed character 3-grams: texts sharing words are close, so
# retrieval behaves sensibly, although the local "answers" are placeholder text.

# %%

from langchain_bytez.server import endpoint_from_env

endpoint = endpoint_from_env(local_api_key="local-cookbook-key", load_delay=0.3, token_delay=0.005)
print(endpoint.describe())
BASE_URL, API_KEY, server = endpoint.base_url, endpoint.api_key, endpoint.server

EMBEDDING_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
CHAT_MODEL = "Qwen/Qwen2.5-0.5B-Instruct"

# %% [markdown]
# ## 1. The documents
#
# Five short notes about running models on Bytez. Each keeps its file name as
# `source` metadata, which the answer cites.

# %%
from langchain_core.documents import Document

NOTES = {
    "loading.md": (
        "Loading a model. Bytez serves each model from an instance cluster. The first "
        "request to a model that is not loaded starts a cold start of 20 to 60 seconds. "
        "Load it ahead of time with client.model(id).load(concurrency=2) and watch the "
        "progress events until the cluster is running."
    ),
    "retries.md": (
        "Retries and rate limits. A request answered with HTTP 429 rate limit exceeded "
        "is retried after the wait the server asked for, up to max_retries times "
        "(two retries by default). Gateway errors 502, 503 and 504 are retried with "
        "exponential backoff. A stream that already delivered text is never retried."
    ),
    "billing.md": (
        "Billing. Bytez bills per second of inference on a meter such as sm-gpu. Every "
        "answer carries inference-time and inference-cost headers, which appear in the "
        "response metadata of each LangChain call."
    ),
    "idle.md": (
        "Idle shutdown. A loaded cluster shuts itself down after its idle timeout, "
        "between 1 and 1440 minutes. Stop a model explicitly with stop() to end billing "
        "at once."
    ),
    "multimodal.md": (
        "Images, audio and video. Chat models of the image-text-to-text, "
        "audio-text-to-text and video-text-to-text tasks accept media blocks by URL or "
        "base64 next to the text of a message."
    ),
}
documents = [Document(page_content=text, metadata={"source": name}) for name, text in NOTES.items()]
print(f"Documents: {len(documents)}")

# %% [markdown]
# ## 2. Split

# %%
from langchain_text_splitters import RecursiveCharacterTextSplitter

splitter = RecursiveCharacterTextSplitter(chunk_size=200, chunk_overlap=30)
chunks = splitter.split_documents(documents)
print(f"Chunks after splitting: {len(chunks)}")

# %% [markdown]
# ## 3. Embed and store
#
# `BytezEmbeddings` sends one text per request, up to `max_concurrency` at a time
# (and no more than the model's `concurrency` instances). `normalize=True` makes dot
# products cosine similarities.

# %%
from langchain_core.vectorstores import InMemoryVectorStore

from langchain_bytez import BytezEmbeddings

embeddings = BytezEmbeddings(
    model=EMBEDDING_MODEL, api_key=API_KEY, base_url=BASE_URL, normalize=True, concurrency=2
)
store = InMemoryVectorStore.from_documents(chunks, embeddings)
print(f"Vector store holds {len(store.store)} chunks")

# %% [markdown]
# ## 4. Retrieve

# %%
QUESTION = "How many times is a request retried after a 429 rate limit?"
retriever = store.as_retriever(search_kwargs={"k": 3})
found = retriever.invoke(QUESTION)
print(f"Question: {QUESTION}")
for rank, doc in enumerate(found, 1):
    print(f"  {rank}. {doc.metadata['source']}: {doc.page_content[:60]}...")
print(f"Top source: {found[0].metadata['source']}")

# %% [markdown]
# ## 5. Answer, streamed, with sources
#
# The retrieved chunks become the context of a chat prompt. `RunnableParallel` keeps
# the documents next to the answer so that the sources can be printed afterwards.

# %%
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableParallel, RunnablePassthrough

from langchain_bytez import ChatBytez


def format_docs(docs: list[Document]) -> str:
    return "\n\n".join(f"[{d.metadata['source']}] {d.page_content}" for d in docs)


prompt = ChatPromptTemplate.from_messages(
    [
        (
            "system",
            "Answer the question using only the context. Cite sources in brackets.\n\n"
            "Context:\n{context}",
        ),
        ("human", "{question}"),
    ]
)
chat = ChatBytez(model=CHAT_MODEL, api_key=API_KEY, base_url=BASE_URL, max_tokens=60)
answer_chain = (
    RunnablePassthrough.assign(context=lambda x: format_docs(x["docs"]))
    | prompt
    | chat
    | StrOutputParser()
)
rag = RunnableParallel(docs=retriever, question=RunnablePassthrough()).assign(answer=answer_chain)

print("Answer: ", end="")
sources: list[str] = []
answer = ""
for part in rag.stream(QUESTION):
    if "answer" in part:
        answer += part["answer"]
        print(part["answer"], end="", flush=True)
    if "docs" in part:
        # Several chunks may come from one note: list each source once, best first.
        sources = list(dict.fromkeys(doc.metadata["source"] for doc in part["docs"]))
print()
print(f"Answer length: {len(answer)} characters")
print(f"Sources: {', '.join(sources)}")

# %%
endpoint.close()
print("RAG finished.")
