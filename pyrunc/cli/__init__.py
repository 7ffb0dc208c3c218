"""runc's command line: argument parsing and error reporting only; the work is in the API."""
