"""Small built-in tasks with hand-written edge-case tests, for quick runs that need no data set.

Each prompt names the exact function and signature and states the edge-case conventions, because the
tests check those conventions and a model cannot guess them.
"""

from __future__ import annotations

from sizeup.tasks.types import Task


def _task(task_type: str, entry_point: str, prompt: str, tests: list[str], reference: str) -> Task:
    """The last two tests of each hand-written list are held out: its larger and trickier cases, which the
    prompt's conventions cover but no visible test shows."""
    return Task(
        task_id=f"builtin/{task_type}",
        source="builtin",
        prompt=prompt,
        entry_point=entry_point,
        tests=tests[:-2],
        hidden_tests=tests[-2:],
        hidden_note="hand-written: the last two tests of the list",
        reference=reference.strip() + "\n",
    )


_RAISES_VALUE_ERROR = """\
try:
    {call}
except ValueError:
    pass
else:
    raise AssertionError("{call} should raise ValueError")"""

_TASKS = [
    _task(
        "prime",
        "is_prime",
        "Write a Python function is_prime(n) that returns True if the integer n is a prime number and False "
        "otherwise. Numbers below 2 (including 0 and negative numbers) are not prime.",
        [
            "assert is_prime(2) is True and is_prime(3) is True",
            "assert is_prime(1) is False and is_prime(0) is False and is_prime(-7) is False",
            "assert is_prime(9) is False and is_prime(25) is False and is_prime(49) is False",
            "assert [n for n in range(30) if is_prime(n)] == [2, 3, 5, 7, 11, 13, 17, 19, 23, 29]",
            "assert is_prime(7919) is True and is_prime(7917) is False",
            "assert is_prime(1_000_003) is True",
        ],
        """
def is_prime(n):
    if n < 2:
        return False
    divisor = 2
    while divisor * divisor <= n:
        if n % divisor == 0:
            return False
        divisor += 1
    return True
""",
    ),
    _task(
        "fibonacci",
        "fibonacci",
        "Write a Python function fibonacci(n) that returns the n-th Fibonacci number for an integer n >= 0, "
        "where fibonacci(0) == 0, fibonacci(1) == 1 and fibonacci(n) == fibonacci(n - 1) + fibonacci(n - 2) "
        "for n >= 2. It must return quickly for n up to 100, so do not use plain recursion.",
        [
            "assert fibonacci(0) == 0",
            "assert fibonacci(1) == 1 and fibonacci(2) == 1",
            "assert [fibonacci(i) for i in range(10)] == [0, 1, 1, 2, 3, 5, 8, 13, 21, 34]",
            "assert fibonacci(30) == 832040",
            "assert fibonacci(100) == 354224848179261915075",
        ],
        """
def fibonacci(n):
    current, following = 0, 1
    for _ in range(n):
        current, following = following, current + following
    return current
""",
    ),
    _task(
        "factorial",
        "factorial",
        "Write a Python function factorial(n) that returns n! (the product 1 * 2 * ... * n) for an integer "
        "n >= 0, with factorial(0) == 1. For a negative n it must raise ValueError.",
        [
            "assert factorial(0) == 1",
            "assert factorial(1) == 1",
            "assert factorial(5) == 120",
            "assert factorial(20) == 2432902008176640000",
            "assert factorial(30) == 265252859812191058636308480000000",
            _RAISES_VALUE_ERROR.format(call="factorial(-1)"),
        ],
        """
def factorial(n):
    if n < 0:
        raise ValueError("factorial is undefined for negative numbers")
    result = 1
    for factor in range(2, n + 1):
        result *= factor
    return result
""",
    ),
    _task(
        "palindrome",
        "is_palindrome",
        "Write a Python function is_palindrome(s) that returns True if the string s reads the same forwards "
        "and backwards when only its letters and digits are considered and upper/lower case is ignored, and "
        "False otherwise. A string with no letters or digits (including the empty string) is a palindrome.",
        [
            "assert is_palindrome('racecar') is True",
            "assert is_palindrome('') is True and is_palindrome('!!') is True",
            "assert is_palindrome('hello') is False and is_palindrome('ab') is False",
            "assert is_palindrome('A man, a plan, a canal: Panama') is True",
            "assert is_palindrome(\"No 'x' in Nixon\") is True",
            "assert is_palindrome('0P') is False and is_palindrome('12321') is True",
        ],
        """
def is_palindrome(s):
    kept = [char.lower() for char in s if char.isalnum()]
    return kept == kept[::-1]
""",
    ),
    _task(
        "gcd",
        "gcd",
        "Write a Python function gcd(a, b) that returns the greatest common divisor of the integers a and b. "
        "The result is never negative, even when a or b is negative; gcd(a, 0) == abs(a) and gcd(0, 0) == 0.",
        [
            "assert gcd(12, 18) == 6 and gcd(18, 12) == 6",
            "assert gcd(17, 5) == 1",
            "assert gcd(0, 5) == 5 and gcd(5, 0) == 5",
            "assert gcd(0, 0) == 0",
            "assert gcd(-12, 18) == 6 and gcd(12, -18) == 6 and gcd(-12, -18) == 6",
            "assert gcd(2**40 * 3, 2**35 * 9) == 2**35 * 3",
        ],
        """
def gcd(a, b):
    a, b = abs(a), abs(b)
    while b:
        a, b = b, a % b
    return a
""",
    ),
    _task(
        "sort",
        "sort_list",
        "Write a Python function sort_list(items) that takes a list of numbers and returns a new list with "
        "the same numbers in ascending order, duplicates kept. The input list must not be modified.",
        [
            "assert sort_list([]) == [] and sort_list([1]) == [1]",
            "assert sort_list([3, 1, 2]) == [1, 2, 3]",
            "assert sort_list([5, -1, 3, -1, 0]) == [-1, -1, 0, 3, 5]",
            "assert sort_list([2.5, 1, -3.5]) == [-3.5, 1, 2.5]",
            "data = [3, 1, 2]\nresult = sort_list(data)\nassert result == [1, 2, 3] and data == [3, 1, 2]",
            "assert sort_list(list(range(200, 0, -1))) == list(range(1, 201))",
        ],
        """
def sort_list(items):
    if len(items) <= 1:
        return list(items)
    middle = len(items) // 2
    left, right = sort_list(items[:middle]), sort_list(items[middle:])
    merged = []
    while left and right:
        merged.append(left.pop(0) if left[0] <= right[0] else right.pop(0))
    return merged + left + right
""",
    ),
    _task(
        "reverse_string",
        "reverse_string",
        "Write a Python function reverse_string(s) that returns the string s with its characters in reverse "
        "order (every character, including spaces and punctuation). The empty string reverses to itself.",
        [
            "assert reverse_string('') == ''",
            "assert reverse_string('a') == 'a'",
            "assert reverse_string('hello') == 'olleh'",
            "assert reverse_string('ab cd!') == '!dc ba'",
            "assert reverse_string('añb') == 'bña'",
        ],
        """
def reverse_string(s):
    return s[::-1]
""",
    ),
    _task(
        "fizzbuzz",
        "fizzbuzz",
        "Write a Python function fizzbuzz(n) that returns a list of strings for the numbers 1 to n "
        "inclusive: 'FizzBuzz' for multiples of both 3 and 5, 'Fizz' for other multiples of 3, 'Buzz' "
        "for other multiples of 5, and the number itself as a string otherwise (e.g. '7'). "
        "For n < 1 return [].",
        [
            "assert fizzbuzz(0) == [] and fizzbuzz(-3) == []",
            "assert fizzbuzz(1) == ['1']",
            "assert fizzbuzz(5) == ['1', '2', 'Fizz', '4', 'Buzz']",
            "assert fizzbuzz(15)[-1] == 'FizzBuzz' and fizzbuzz(15)[9] == 'Buzz'",
            "words = fizzbuzz(100)\nassert len(words) == 100 and words[89] == 'FizzBuzz'\nassert words[97] == '98'",
        ],
        """
def fizzbuzz(n):
    words = []
    for number in range(1, n + 1):
        word = ("Fizz" if number % 3 == 0 else "") + ("Buzz" if number % 5 == 0 else "")
        words.append(word or str(number))
    return words
""",
    ),
    _task(
        "anagram",
        "is_anagram",
        "Write a Python function is_anagram(a, b) that returns True if the strings a and b are anagrams of "
        "each other (they contain the same letters, each the same number of times), ignoring upper/lower "
        "case and spaces, and False otherwise. Two empty strings are anagrams.",
        [
            "assert is_anagram('listen', 'silent') is True",
            "assert is_anagram('Dormitory', 'dirty room') is True",
            "assert is_anagram('aab', 'abb') is False",
            "assert is_anagram('', '') is True",
            "assert is_anagram('abc', 'abcd') is False and is_anagram('abcd', 'abc') is False",
            "assert is_anagram('Astronomer', 'Moon starer') is True",
        ],
        """
from collections import Counter


def is_anagram(a, b):
    def letters(text):
        return Counter(text.replace(" ", "").lower())

    return letters(a) == letters(b)
""",
    ),
    _task(
        "max_subarray",
        "max_subarray_sum",
        "Write a Python function max_subarray_sum(nums) that returns the largest sum of any non-empty "
        "contiguous sublist of the list of integers nums. If every number is negative the answer is the "
        "largest (least negative) number. For an empty list return 0.",
        [
            "assert max_subarray_sum([-2, 1, -3, 4, -1, 2, 1, -5, 4]) == 6",
            "assert max_subarray_sum([1]) == 1",
            "assert max_subarray_sum([-3, -1, -2]) == -1",
            "assert max_subarray_sum([]) == 0",
            "assert max_subarray_sum([5, 4, -1, 7, 8]) == 23",
            "assert max_subarray_sum([2, -10, 3]) == 3",
        ],
        """
def max_subarray_sum(nums):
    if not nums:
        return 0
    best = current = nums[0]
    for number in nums[1:]:
        current = max(number, current + number)
        best = max(best, current)
    return best
""",
    ),
    _task(
        "binary_search",
        "binary_search",
        "Write a Python function binary_search(items, target) that returns the index of target in items, a "
        "list of distinct integers sorted in ascending order, or -1 if target is not in the list. It must "
        "take O(log n) steps.",
        [
            "assert binary_search([], 1) == -1",
            "assert binary_search([1], 1) == 0 and binary_search([1], 2) == -1",
            "assert binary_search([1, 3, 5, 7, 9], 1) == 0 and binary_search([1, 3, 5, 7, 9], 9) == 4",
            "assert binary_search([1, 3, 5, 7, 9], 4) == -1 and binary_search([1, 3, 5, 7, 9], 10) == -1",
            "data = list(range(0, 2000, 2))\nassert all(binary_search(data, v) == v // 2 for v in data)\n"
            "assert binary_search(data, 1999) == -1 and binary_search(data, -2) == -1",
        ],
        """
def binary_search(items, target):
    low, high = 0, len(items) - 1
    while low <= high:
        middle = (low + high) // 2
        if items[middle] == target:
            return middle
        if items[middle] < target:
            low = middle + 1
        else:
            high = middle - 1
    return -1
""",
    ),
    _task(
        "roman",
        "to_roman",
        "Write a Python function to_roman(n) that returns the Roman numeral for an integer 1 <= n <= 3999 as "
        "an upper-case string, using subtractive notation (IV, IX, XL, XC, CD, CM), e.g. to_roman(1994) == "
        "'MCMXCIV'.",
        [
            "assert to_roman(1) == 'I' and to_roman(3) == 'III'",
            "assert to_roman(4) == 'IV' and to_roman(9) == 'IX' and to_roman(14) == 'XIV'",
            "assert to_roman(40) == 'XL' and to_roman(90) == 'XC' and to_roman(400) == 'CD'",
            "assert to_roman(58) == 'LVIII' and to_roman(1994) == 'MCMXCIV'",
            "assert to_roman(3999) == 'MMMCMXCIX'",
        ],
        """
_NUMERALS = [
    (1000, "M"), (900, "CM"), (500, "D"), (400, "CD"), (100, "C"), (90, "XC"),
    (50, "L"), (40, "XL"), (10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I"),
]


def to_roman(n):
    parts = []
    for value, numeral in _NUMERALS:
        count, n = divmod(n, value)
        parts.append(numeral * count)
    return "".join(parts)
""",
    ),
    _task(
        "balanced_brackets",
        "is_balanced",
        "Write a Python function is_balanced(s) that returns True if every bracket in the string s — (), [] "
        "and {} — is closed by the matching bracket in the right order, and False otherwise. Other "
        "characters are ignored; the empty string is balanced.",
        [
            "assert is_balanced('') is True and is_balanced('abc') is True",
            "assert is_balanced('([]{})') is True and is_balanced('a(b[c]{d}e)f') is True",
            "assert is_balanced('([)]') is False",
            "assert is_balanced('((') is False and is_balanced('}') is False",
            "assert is_balanced(')(') is False",
        ],
        """
def is_balanced(s):
    closing_to_opening = {")": "(", "]": "[", "}": "{"}
    stack = []
    for char in s:
        if char in "([{":
            stack.append(char)
        elif char in closing_to_opening:
            if not stack or stack.pop() != closing_to_opening[char]:
                return False
    return not stack
""",
    ),
]

TASK_TYPES: dict[str, Task] = {task.task_id.removeprefix("builtin/"): task for task in _TASKS}


def builtin_task(task_type: str) -> Task:
    """A fresh copy of one built-in task; raises ValueError naming the known types."""
    try:
        task = TASK_TYPES[task_type]
    except KeyError:
        raise ValueError(f"unknown task type {task_type!r}; known: {', '.join(TASK_TYPES)}") from None
    return task.model_copy(deep=True)  # callers may edit their copy without changing the catalogue


def builtin_tasks() -> list[Task]:
    """Fresh copies of every built-in task, in catalogue order."""
    return [builtin_task(task_type) for task_type in TASK_TYPES]
