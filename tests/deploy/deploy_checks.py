"""What check_containerfiles.py and check_kubernetes.py share: how a check reports."""


def report(problems, summary):
    """Prints each problem as a FAIL line, then SUMMARY; the exit status (1 if any)."""
    for p in problems:
        print("FAIL:", p)
    print(summary)
    return 1 if problems else 0
