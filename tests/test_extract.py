from sizeup.models.extract import extract_code, strip_thinking


def test_fenced_block_is_taken_and_prose_dropped():
    reply = "Sure! Here it is:\n```python\ndef add(a, b):\n    return a + b\n```\nThis adds two numbers."
    assert extract_code(reply) == "def add(a, b):\n    return a + b"


def test_block_defining_the_entry_point_wins_over_longer_blocks():
    reply = (
        "```python\nimport math\nprint('a long example that is not the answer at all')\nx = 1\n```\n"
        "```python\ndef f(n):\n    return n\n```"
    )
    assert extract_code(reply, entry_point="f") == "def f(n):\n    return n"


def test_think_section_is_not_code():
    reply = "<think>maybe def wrong(): pass ```python\nbad\n```</think>\n```python\ndef ok():\n    return 1\n```"
    assert extract_code(reply) == "def ok():\n    return 1"
    assert "think" not in strip_thinking(reply)


def test_unterminated_think_is_dropped():
    assert strip_thinking("answer<think>still thinking") == "answer"


def test_bare_code_with_trailing_prose():
    reply = "def square(x):\n    return x * x\nThis function squares its input."
    assert extract_code(reply) == "def square(x):\n    return x * x"


def test_reply_cut_by_token_limit_is_trimmed_to_what_parses():
    reply = "```python\ndef f(x):\n    return x\n\ndef g(y):\n    return (y +"
    assert extract_code(reply) == "def f(x):\n    return x"


def test_unterminated_fence_keeps_the_code():
    assert extract_code("```python\nx = 1\ny = 2\n") == "x = 1\ny = 2"


def test_other_language_blocks_are_ignored():
    reply = "```bash\npip install x\n```\n```python\nz = 3\n```"
    assert extract_code(reply) == "z = 3"


def test_appended_asserts_and_prints_are_not_part_of_the_answer():
    reply = (
        "import math\n\nLIMIT = 10\n\n@staticmethod\ndef gcd(a, b):\n    assert a >= 0\n"
        "    return math.gcd(a, b)\n\n"
        "assert gcd(-12, 18) == 7\nprint(gcd(1, 2))\nfor i in range(3):\n    print(i)\n"
        "if __name__ == '__main__':\n    input()\n"
    )
    assert extract_code(reply, entry_point="gcd") == (
        "import math\n\nLIMIT = 10\n\n@staticmethod\ndef gcd(a, b):\n    assert a >= 0\n    return math.gcd(a, b)"
    )


def test_scripts_without_the_entry_point_are_kept_whole():
    assert extract_code("print('hello')\nx = 1", entry_point=None) == "print('hello')\nx = 1"
    assert extract_code("print('hello')\nx = 1", entry_point="f") == "print('hello')\nx = 1"
