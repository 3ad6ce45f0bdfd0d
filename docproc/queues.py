"""The broker queues docproc's tasks wait in."""

from __future__ import annotations

# A batch's first hop: detect and extract.
DOCUMENTS = "docproc"
# Its second hop, in a queue of its own that workers read in turn with the first: documents
# already half done finish while new ones start, instead of waiting behind the whole backlog.
FINISHING = "docproc.finish"
# Recovery, the daily report and the purge: never behind a backlog of documents.
CONTROL = "docproc.control"

DOCUMENT_QUEUES = (DOCUMENTS, FINISHING)
ALL = (DOCUMENTS, FINISHING, CONTROL)
