"""`python -m streamdeblur`: the same front door as the `streamdeblur` command."""

from streamdeblur.entry import main

main()
