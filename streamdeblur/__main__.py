"""`python -m streamdeblur`: the command line, with Ctrl-C answered from the first moment."""

from streamdeblur.stopping import stop_at_once

stop_at_once()  # main() does it too; here it holds while the command line loads
try:
    from streamdeblur.cli import main
except KeyboardInterrupt:
    raise SystemExit(130) from None

main()
