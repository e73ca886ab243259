from matpo_gym.core.messages import Message
from matpo_gym.envs.context import MESSAGE_OVERHEAD, approx_tokens, fit_context


def conversation(turns: int, words: int = 50) -> list[Message]:
    messages = [Message("system", "You are helpful."), Message("user", "Question: what?")]
    for i in range(turns):
        messages.append(Message("assistant", f"call {i}"))
        messages.append(Message("tool", " ".join([f"w{i}"] * words)))
    return messages


def test_short_conversation_is_untouched():
    messages = conversation(2)
    fitted = fit_context(messages, 10_000)
    assert fitted.messages == tuple(messages)
    assert not fitted.truncated


def test_middle_is_dropped_head_and_latest_kept():
    messages = conversation(10)
    fitted = fit_context(messages, 200)
    assert fitted.truncated and fitted.dropped_messages > 0
    assert fitted.messages[:2] == tuple(messages[:2])
    assert fitted.messages[-1] == messages[-1]
    assert "removed to fit" in fitted.messages[2].content
    assert sum(approx_tokens(m.content) + MESSAGE_OVERHEAD for m in fitted.messages) <= 200
    assert fitted.tokens <= 200


def test_oversized_latest_message_is_cut():
    messages = conversation(1, words=5_000)
    fitted = fit_context(messages, 300)
    assert fitted.cut_chars > 0
    assert fitted.messages[-1].content.endswith("[...cut to fit the context window]")
    assert sum(approx_tokens(m.content) + MESSAGE_OVERHEAD for m in fitted.messages) <= 300


def test_a_long_first_message_is_cut_before_the_latest_one():
    # a worker whose subtask alone fills the budget must still see the env's latest message (say,
    # the request for its summary), whole, and the prompt must fit
    messages = [Message("system", "You are a worker."), Message("user", "Subtask: " + "word " * 500),
                Message("assistant", "call"), Message("user", "Write your final summary now.")]
    fitted = fit_context(messages, 200)
    assert fitted.messages[-1] == messages[-1]
    assert fitted.messages[1].content.endswith("[...cut to fit the context window]")
    assert fitted.tokens == sum(approx_tokens(m.content) + MESSAGE_OVERHEAD for m in fitted.messages) <= 200


def test_a_cut_message_fits_with_its_marker():
    messages = conversation(0) + [Message("assistant", "call"), Message("tool", "aaaa " * 3000)]
    for limit in (120, 200, 1000):
        fitted = fit_context(messages, limit)
        assert fitted.tokens == sum(approx_tokens(m.content) + MESSAGE_OVERHEAD for m in fitted.messages)
        assert limit - 3 <= fitted.tokens <= limit


def test_a_short_question_stays_whole_under_a_long_system_prompt():
    # a system prompt that takes most of the budget: the tool result is cut, never the question
    messages = [Message("system", "rule " * 480), Message("user", "Question: who founded Braltraeth Systems?"),
                Message("assistant", "call"), Message("tool", "result " * 150)]
    fitted = fit_context(messages, 600)
    assert fitted.messages[1] == messages[1]
    assert fitted.messages[-1].content.endswith("[...cut to fit the context window]")
    assert fitted.tokens <= 600


def test_a_budget_smaller_than_the_system_prompt_is_a_clear_error():
    import pytest

    messages = [Message("system", "rule " * 480), Message("user", "Question: who?"), Message("tool", "x")]
    with pytest.raises(ValueError, match="cannot hold the system prompt .484 tokens. and a question; raise"):
        fit_context(messages, 300)


def test_a_fitted_prompt_stays_within_its_budget_whatever_the_sizes():
    for system_words in (10, 200, 420, 540):
        for question_words in (5, 60, 400):
            for tool_words in (3, 100, 2000):
                messages = [Message("system", "rule " * system_words), Message("user", "q " * question_words),
                            Message("assistant", "call"), Message("tool", "r " * tool_words)]
                fitted = fit_context(messages, 600)
                assert fitted.tokens <= 600, (system_words, question_words, tool_words, fitted.tokens)
                assert fitted.tokens == sum(approx_tokens(m.content) + MESSAGE_OVERHEAD for m in fitted.messages)
