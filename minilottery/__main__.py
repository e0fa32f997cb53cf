"""``python -m minilottery {train,imp,supermask,jackpot,report,bench} ...`` (see minilottery/commands/)."""
import sys

from minilottery.commands import main

if __name__ == "__main__":
    sys.exit(main())
