"""The command line: ``python -m core``, its reports and the report templates."""
