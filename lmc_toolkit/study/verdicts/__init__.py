"""The study's claims judged on a report's figure JSON (`judge`) by pre-registered, versioned
rules (`Thresholds`, `RULES`), and written as `claims.md` (`write_claims`)."""

from lmc_toolkit.study.verdicts.claims import judge
from lmc_toolkit.study.verdicts.rules import RULES, RULES_VERSION, THRESHOLDS, Thresholds
from lmc_toolkit.study.verdicts.table import write_claims
from lmc_toolkit.study.verdicts.verdict import Verdict

__all__ = [
    "RULES",
    "RULES_VERSION",
    "THRESHOLDS",
    "Thresholds",
    "Verdict",
    "judge",
    "write_claims",
]
