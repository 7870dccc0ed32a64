"""Search modes with a scripted generator and a dictionary retriever: control flow, trace and cost accounting."""
from __future__ import annotations

from dataclasses import dataclass

import pytest

from indexers.errors import ConfigError
from indexers.types import Hit
from rag.modes import BATCHED_MODES, MODE_NAMES, ModeContext, run_mode, run_mode_batch


@dataclass(frozen=True)
class Gen:
    text: str
    n_prompt_tokens: int = 10
    n_new_tokens: int = 3
    seconds: float = 0.0


def _ctx(replies, corpus, **limits):
    calls = {"gen": [], "ret": []}
    replies = list(replies)

    def generate(messages, max_new_tokens, *, final=False):
        calls["gen"].append((messages[-1]["content"], max_new_tokens, final))
        return Gen(replies.pop(0))

    def retrieve(query):
        calls["ret"].append(query)
        return [Hit(id=pid, score=1.0, title=pid, text=text) for pid, text in corpus.get(query, [])]

    return ModeContext(retrieve=retrieve, generate=generate, **limits), calls


Q = "Who is the spouse of the director of Titanic?"
CORPUS = {Q: [("p1", "Titanic was directed by James Cameron.")],
          "James Cameron directed Titanic.": [("p2", "James Cameron is married to Suzy Amis.")],
          "Who directed Titanic?": [("p1", "Titanic was directed by James Cameron.")],
          "Who is James Cameron's spouse?": [("p2", "James Cameron is married to Suzy Amis.")]}


def test_none_never_retrieves():
    ctx, calls = _ctx(["Suzy Amis"], CORPUS)
    r = run_mode("none", Q, ctx)
    assert r.answer == "Suzy Amis" and r.retrieval_calls == 0 and not calls["ret"] and r.passages == []
    assert calls["gen"][0][2] is True  # the final answer is flagged final


def test_one_shot_answers_from_the_passages_and_strips_citations():
    ctx, calls = _ctx(["James Cameron [1]"], CORPUS)
    r = run_mode("one_shot", Q, ctx)
    assert r.answer == "James Cameron" and r.raw_text == "James Cameron [1]"
    assert [h.id for h in r.passages] == ["p1"] and r.retrieval_calls == 1
    assert "Titanic was directed by James Cameron" in calls["gen"][0][0]


def test_iterative_retrieves_on_each_thought_and_accumulates_evidence():
    ctx, calls = _ctx(["James Cameron directed Titanic. More text", "So the answer is: Suzy Amis.",
                       "Suzy Amis [2]"], CORPUS, max_steps=3)
    r = run_mode("iterative", Q, ctx)
    assert calls["ret"] == [Q, "James Cameron directed Titanic."]  # the retrieval is keyed on the sentence
    assert [h.id for h in r.passages] == ["p1", "p2"] and r.retrieval_calls == 2
    assert r.answer == "Suzy Amis"
    assert "James Cameron is married" in calls["gen"][-1][0] and calls["gen"][-1][2] is True
    assert r.n_new_tokens == 9 and r.n_prompt_tokens == 30  # summed over the three generations
    assert [s.kind for s in r.trace] == ["retrieve", "thought", "retrieve", "thought", "answer"]


def test_iterative_stops_at_the_step_limit():
    ctx, calls = _ctx(["Thought one.", "Thought two.", "Thought three.", "x"], CORPUS, max_steps=2)
    r = run_mode("iterative", Q, ctx)
    assert r.retrieval_calls == 2 and len(calls["gen"]) == 2


def test_chain_decomposes_into_subqueries_until_done():
    ctx, calls = _ctx(["Who directed Titanic?", "James Cameron [1]", "Who is James Cameron's spouse?",
                       "Suzy Amis [1]", "DONE", "Suzy Amis [2]"], CORPUS, max_steps=3)
    r = run_mode("chain", Q, ctx)
    assert calls["ret"] == ["Who directed Titanic?", "Who is James Cameron's spouse?"]
    assert r.answer == "Suzy Amis" and r.retrieval_calls == 2 and [h.id for h in r.passages] == ["p1", "p2"]
    final_prompt = calls["gen"][-1][0]
    assert "Who directed Titanic? -> James Cameron" in final_prompt and calls["gen"][-1][2] is True
    assert r.trace[-1].links[1] == ("Who is James Cameron's spouse?", "Suzy Amis")
    assert r.to_dict()["trace"][-1] == {"kind": "chain", "links": [["Who directed Titanic?", "James Cameron"],
                                                              ["Who is James Cameron's spouse?", "Suzy Amis"]],
                                        "seconds": 0.0}


def test_chain_searches_the_question_when_the_model_says_done_at_once():
    ctx, calls = _ctx(["DONE", "James Cameron", "DONE", "James Cameron"], CORPUS)
    r = run_mode("chain", Q, ctx)
    assert calls["ret"] == [Q] and r.retrieval_calls == 1 and r.answer == "James Cameron"


def test_bad_names_and_limits_are_clear_errors():
    ctx, _ = _ctx([], CORPUS)
    with pytest.raises(ConfigError, match="none, one_shot, iterative, chain"):
        run_mode("ircot", Q, ctx)
    with pytest.raises(ConfigError, match="empty"):
        run_mode("none", "  ", ctx)
    with pytest.raises(ConfigError, match="max_steps"):
        _ctx([], CORPUS, max_steps=0)
    assert MODE_NAMES == ("none", "one_shot", "iterative", "chain")


def _batch_ctx(replies_by_question, corpus, **limits):
    """A context whose generator answers by question (the prompt's last message names it), batched or not."""
    calls = {"batch": [], "gen": 0}

    def reply(messages):
        content = messages[-1]["content"]
        return Gen(next(r for q, r in replies_by_question.items() if q in content))

    def generate(messages, max_new_tokens, *, final=False):
        calls["gen"] += 1
        return reply(messages)

    def generate_batch(prompts, max_new_tokens):
        calls["batch"].append((len(prompts), max_new_tokens))
        return [reply(p) for p in prompts]

    def retrieve(query):
        return [Hit(id=pid, score=1.0, title=pid, text=text) for pid, text in corpus.get(query, [])]

    return ModeContext(retrieve=retrieve, generate=generate, generate_batch=generate_batch, **limits), calls


def test_batched_none_and_one_shot_give_the_per_question_results():
    q2 = "Who directed Titanic?"
    replies = {Q: "Suzy Amis [1]", q2: "James Cameron [1]"}
    ctx, calls = _batch_ctx(replies, CORPUS, answer_tokens=7)
    for mode in BATCHED_MODES:
        batched = run_mode_batch(mode, [Q, q2], ctx)
        single = [run_mode(mode, q, ctx) for q in (Q, q2)]
        for b, s in zip(batched, single):
            assert (b.mode, b.question, b.answer, b.raw_text, b.retrieval_calls, b.n_prompt_tokens,
                    b.n_new_tokens) == (s.mode, s.question, s.answer, s.raw_text, s.retrieval_calls,
                                        s.n_prompt_tokens, s.n_new_tokens)
            assert [h.id for h in b.passages] == [h.id for h in s.passages]
            assert [st.kind for st in b.trace] == [st.kind for st in s.trace]
    assert calls["batch"] == [(2, 7), (2, 7)]  # one batched call per mode, with the answer budget
    assert batched[0].answer == "Suzy Amis" and [h.id for h in batched[1].passages] == ["p1"]


def test_stepwise_modes_and_contexts_without_a_batch_function_run_per_question():
    ctx, calls = _batch_ctx({Q: "So the answer is: Suzy Amis."}, CORPUS, max_steps=2)
    r = run_mode_batch("iterative", [Q], ctx)
    assert r[0].answer == "Suzy Amis" and calls["batch"] == [] and calls["gen"] == 2
    plain, _ = _ctx(["Suzy Amis"], CORPUS)
    assert run_mode_batch("none", [Q], plain)[0].answer == "Suzy Amis"


def test_batch_errors_are_clear():
    ctx, _ = _batch_ctx({Q: "x"}, CORPUS)
    with pytest.raises(ConfigError, match="unknown search mode"):
        run_mode_batch("nope", [Q], ctx)
    with pytest.raises(ConfigError, match="empty"):
        run_mode_batch("none", [Q, " "], ctx)
    short = ModeContext(retrieve=ctx.retrieve, generate=ctx.generate, generate_batch=lambda p, n: [])
    with pytest.raises(ConfigError, match="returned 0 generations for 1"):
        run_mode_batch("none", [Q], short)
    with pytest.raises(ConfigError, match="generate_batch"):
        ModeContext(retrieve=ctx.retrieve, generate=ctx.generate, generate_batch="yes")


def test_a_past_deadline_stops_iterative_and_chain_after_their_first_round():
    """Budget seconds: no new round starts once the deadline passed, and the answer is still written."""
    ctx, calls = _ctx(["James Cameron [1]"], CORPUS, max_steps=3, deadline=0.0)
    r = run_mode("iterative", Q, ctx)
    assert r.retrieval_calls == 1 and [s.kind for s in r.trace] == ["retrieve", "answer"] and r.answer
    ctx, calls = _ctx(["Who directed Titanic?", "James Cameron [1]", "James Cameron [1]"], CORPUS, max_steps=3,
                      deadline=0.0)
    r = run_mode("chain", Q, ctx)
    assert r.retrieval_calls == 1 and [s.kind for s in r.trace] == ["subquery", "retrieve", "subanswer", "answer",
                                                                     "chain"]
