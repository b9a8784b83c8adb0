"""Published tables, reproduced: the numbers of the papers ovss follows (``published.csv``, every
one with its source), the tables they form (``tables``), and ``reproduce_table``, which runs one
table's protocol through the benchmark runner and writes measured | published | delta per cell."""

from .published import FIELDS, PUBLISHED_CSV, Published, load_published
from .run import reproduce_table
from .tables import SPECS, Column, Table, TableSpec, get_table, list_tables, list_text

__all__ = ["FIELDS", "PUBLISHED_CSV", "Published", "load_published", "reproduce_table", "SPECS", "Column", "Table",
           "TableSpec", "get_table", "list_tables", "list_text"]
