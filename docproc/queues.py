"""The broker queues docproc's tasks wait in."""

from __future__ import annotations

# A batch's first hop: detect and extract.
DOCUMENTS = "docproc"
# Its second hop, in a queue of its own that workers read in turn with the first: documents
# already half done finish while new ones start, instead of waiting behind the whole backlog.
FINISHING = "docproc.finish"
# Pages to read by OCR (100x a text PDF's work): consumed by a worker of its own with prefetch
# 1, so neither a long scan nor its prefetched page ranges hold up the two queues above.
OCR = "docproc.ocr"
# Recovery, the daily report and the purge: never behind a backlog of documents.
CONTROL = "docproc.control"

DOCUMENT_QUEUES = (DOCUMENTS, FINISHING, OCR)
ALL = (DOCUMENTS, FINISHING, OCR, CONTROL)
# What `docproc up`'s document worker consumes: all but OCR, which has a worker of its own. A
# worker started without --queues consumes every queue, so that it alone still does all.
DOCUMENT_WORKER = (DOCUMENTS, FINISHING, CONTROL)
