"""Bulk import and export of records as CSV and XLSX files (docs/import-export.md).

Imports write through ``RecordService`` (channel ``import``) in streamed batches;
exports stream rows out under the same permission policy as every read.
"""

from formwork.transfer.exporter import HEADER_STYLES, ExportRefused, export_records, export_rows
from formwork.transfer.importer import MODES, Importer, ImportReport, RowProblem
from formwork.transfer.tabular import FORMATS, FileUnreadable, open_reader, open_writer

__all__ = [
    "FORMATS",
    "HEADER_STYLES",
    "MODES",
    "ExportRefused",
    "FileUnreadable",
    "ImportReport",
    "Importer",
    "RowProblem",
    "export_records",
    "export_rows",
    "open_reader",
    "open_writer",
]
