"""Go's integer syntax (strconv.Atoi), which runc's flags follow, checked without `re`
(importing it costs milliseconds on every call)."""

DIGITS = frozenset("0123456789")


def is_digits(text):
    """One or more ASCII digits (str.isdigit() would also take "²", which int() then refuses)."""
    return bool(text) and DIGITS.issuperset(text)


def is_atoi(text):
    """strconv.Atoi's syntax: an optional sign, then ASCII digits ("+9" is 9)."""
    return is_digits(text[1:] if text[:1] in ("+", "-") else text)
