"""Bad input never hurts (issue 20): a hypothesis fuzz of every public ftx API.

Layout:
    _values.py      bad values as source text (pools), fuzz callables, lying files
    _contract.py    the contract checked per example (error class and message form, inputs
                    unchanged, no leaked global state, no changed file, 10 s limit)
    _api_*.py       one table per area: each public call, its slots, good value and bad pool
    _allow.py       documented acceptable violations, each with its reason
    _xfail.py       TEMPORARY strict xfails for other owners' files ("owner fixing: <file>")
    test_fuzz_*.py  one (api, slot) case each, 12 derandomized examples (x20 with --fuzz-long
                    or FTX_FUZZ_LONG=1); test_fuzz_contract.py checks the checker
    report.py       python -m tests.fuzz.report [--long] [--write-xfail] -> /tmp/fuzz_report.md
"""
