"""XLSForm interop: import partner questionnaires (via pyxform) and publish ours back.

`import_xlsform(path)` -> XlsformResult (form data, YAML text, warnings);
`export_xlsform(form, out)` writes an .xlsx that pyxform compiles. pyxform and openpyxl
are imported inside the functions that use them, so importing this package is cheap.
"""

from __future__ import annotations

from yntymak_cli.xlsform.exporter import export_xlsform
from yntymak_cli.xlsform.importer import XlsformResult, XlsformWarning, import_xlsform

__all__ = ["XlsformResult", "XlsformWarning", "export_xlsform", "import_xlsform"]
