"""The command line: replay, convert, ddl."""
