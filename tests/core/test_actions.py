import json

from hypothesis import given
from hypothesis import strategies as st

from matpo_gym.core.actions import Answer, ParseError, ToolCall, parse_action, strip_thinking


def test_tool_call_round_trips():
    call = ToolCall("search", {"query": "Rhine length", "top_k": 3})
    assert parse_action(call.render()) == call


def test_answer_tag_and_boxed():
    assert parse_action("So <answer> 1873 </answer>") == Answer("1873")
    assert parse_action(r"The result is \boxed{\frac{1}{2}} done") == Answer(r"\frac{1}{2}")
    # a boxed answer inside the tag, as models trained on maths write it, answers its content
    assert parse_action(r"<answer>\boxed{70}</answer>") == Answer("70")
    assert parse_action(r"<answer>$\boxed{\text{Paris}}$</answer>") == Answer("Paris")
    assert parse_action(r"<answer>\boxed{1} or \boxed{2}</answer>") == Answer(r"\boxed{1} or \boxed{2}")


def test_thinking_is_never_an_action():
    text = (
        "<think>maybe <answer>wrong</answer></think>"
        "<tool_call>{\"name\": \"search\", \"arguments\": {\"query\": \"x\"}}</tool_call>"
    )
    assert parse_action(text) == ToolCall("search", {"query": "x"})
    assert isinstance(parse_action("<think>unfinished <answer>1</answer>"), ParseError)
    assert strip_thinking("a<think>b</think>c") == "ac"


def test_first_complete_action_wins_and_trailing_text_is_ignored():
    text = '<answer>A</answer> then <tool_call>{"name": "search"}</tool_call>'
    assert parse_action(text) == Answer("A")


def test_double_encoded_arguments_are_accepted():
    text = '<tool_call>{"name": "browse", "arguments": "{\\"url\\": \\"/wiki/X\\"}"}</tool_call>'
    assert parse_action(text) == ToolCall("browse", {"url": "/wiki/X"})


def test_malformed_outputs_explain_what_to_fix():
    cases = {
        "<tool_call>{not json}</tool_call>": "not valid JSON",
        "<tool_call>[1, 2]</tool_call>": "JSON object",
        '<tool_call>{"arguments": {}}</tool_call>': "non-empty string 'name'",
        '<tool_call>{"name": "s", "arguments": [1]}</tool_call>': "'arguments' must be a JSON object",
        '<tool_call>{"name": "s", "args": {}}</tool_call>': "Unexpected keys",
        "<answer>   </answer>": "answer is empty",
        "<answer>never closed": "never closed",
        "just prose": "No action found",
        r"\boxed{unbalanced": "No action found",
    }
    for text, expected in cases.items():
        result = parse_action(text)
        assert isinstance(result, ParseError), text
        assert expected in result.message, (text, result.message)
        assert "<tool_call>" in result.message  # the format help is always included


def test_non_text_input_is_an_error_not_an_exception():
    assert isinstance(parse_action(None), ParseError)  # type: ignore[arg-type]


@given(st.text())
def test_parser_never_raises_on_arbitrary_text(text):
    result = parse_action(text)
    assert isinstance(result, (ToolCall, Answer, ParseError))


@given(
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1).filter(lambda s: s.strip()),
    st.dictionaries(st.text(min_size=1), st.one_of(st.integers(), st.text(), st.booleans()), max_size=4),
)
def test_any_well_formed_call_parses_back(name, arguments):
    text = "<tool_call>" + json.dumps({"name": name, "arguments": arguments}) + "</tool_call>"
    result = parse_action(text)
    if "<think>" in text or "</tool_call>" in json.dumps(name) + json.dumps(arguments):
        return
    assert result == ToolCall(name.strip(), arguments)


@given(st.text(min_size=1).filter(lambda s: s.strip() and "</answer>" not in s and "<think>" not in s))
def test_any_answer_parses_back(text):
    assert parse_action(f"<answer>{text}</answer>") == Answer(text.strip())
