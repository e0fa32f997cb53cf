"""``python -m minilottery {train,imp,report,bench} ...`` (see minilottery/commands/)."""
import sys

from minilottery.commands import main

if __name__ == "__main__":
    sys.exit(main())
