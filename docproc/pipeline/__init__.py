"""The pure document-processing layer: detect, extract, analyze, thumbnail."""

from docproc.errors import DocumentError, ErrorType
from docproc.pipeline.analyze import Analysis, analyze
from docproc.pipeline.detect import FileType, Kind, detect
from docproc.pipeline.extract import Extraction, ImageInfo, extract
from docproc.pipeline.thumbnail import make_thumbnail

__all__ = [
    "Analysis",
    "DocumentError",
    "ErrorType",
    "Extraction",
    "FileType",
    "ImageInfo",
    "Kind",
    "analyze",
    "detect",
    "extract",
    "make_thumbnail",
]
