"""`python -m tap_contactbased` runs the tap."""

from tap_contactbased.cli import main

main()
