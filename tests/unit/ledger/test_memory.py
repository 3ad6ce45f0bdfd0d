"""MemoryLedger keeps the document-records contract (the ledger of `docproc process`)."""

from __future__ import annotations

import pytest

from docproc.ledger.memory import MemoryLedger
from tests.ledger_contract import LedgerContract


class TestMemoryLedger(LedgerContract):
    @pytest.fixture
    def ledger(self) -> MemoryLedger:
        return MemoryLedger()
