# %% [markdown]
# # 08 · Structured extraction
#
# `ChatBytez.with_structured_output(Schema)` turns a chat model into an extractor that
# returns validated, typed objects:
#
# 1. **extract** a pydantic object from text, with each method: `function_calling`
#    (the schema is a tool the model must call), `json_schema` and `json_mode` (the
#    model answers JSON);
# 2. **batch** it over several texts;
# 3. handle a **bad answer**: an `OutputParserException` carrying the model's text, or
#    `include_raw=True` to get the failure back instead of an exception.
#
# With `BYTEZ_API_KEY` unset it runs against the local Bytez-compatible server, whose
# tool model answers JSON following the schema it is given.

# %%

from langchain_bytez.server import endpoint_from_env

endpoint = endpoint_from_env(local_api_key="local-cookbook-key", load_delay=0.2, token_delay=0.002)
print(endpoint.describe())
BASE_URL, API_KEY, server = endpoint.base_url, endpoint.api_key, endpoint.server

MODEL = "Qwen/Qwen2.5-7B-Instruct"

# %% [markdown]
# ## The schema
#
# Field types and descriptions are what the model sees; the answer is validated
# against them.

# %%
from pydantic import BaseModel, Field


class Person(BaseModel):
    """A person mentioned in the text."""

    name: str = Field(description="The person's first name")
    age: int = Field(description="Age in years")


# %% [markdown]
# ## 1. Extract, with each method

# %%
from langchain_bytez import ChatBytez

chat = ChatBytez(model=MODEL, api_key=API_KEY, base_url=BASE_URL, max_tokens=256)
TEXT = "Ann is 31 years old and lives in Lyon."
for method in ("function_calling", "json_schema", "json_mode"):
    extractor = chat.with_structured_output(Person, method=method)
    person = extractor.invoke(TEXT)
    print(f"{method:>16}: {person!r}")

# %% [markdown]
# ## 2. Batch
#
# The extractor is a runnable: `batch` runs the texts concurrently.

# %%
extractor = chat.with_structured_output(Person)
texts = ["Bob is 42.", "Chloe turned 27 last week.", "Dmitri, 65, retired in May."]
people = extractor.batch(texts)
for text, person in zip(texts, people, strict=True):
    print(f"{text!r} -> {person.name}, {person.age}")
print(f"Extracted {len(people)} people, all typed: {all(isinstance(p, Person) for p in people)}")

# %% [markdown]
# ## 3. A bad answer
#
# Models do not always comply. A missing field, a wrong type or text instead of JSON
# raises `OutputParserException`, whose `llm_output` is what the model wrote. The
# local server can be told what to answer, to show it; against Bytez this part is
# skipped.

# %%
from langchain_core.exceptions import OutputParserException

if server is not None:
    server.set_reply(['{"name":', ' "Ann"}'], model_id=MODEL)  # no "age"
    try:
        chat.with_structured_output(Person, method="json_schema").invoke(TEXT)
    except OutputParserException as error:
        print(f"Refused: {type(error).__name__}, model wrote {error.llm_output!r}")
    outcome = chat.with_structured_output(Person, method="json_schema", include_raw=True).invoke(
        TEXT
    )
    print(f"include_raw: parsed={outcome['parsed']!r}, raw text={outcome['raw'].text!r}")
    server.set_reply(None, model_id=MODEL)

endpoint.close()
print("Structured extraction finished.")
