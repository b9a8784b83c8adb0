"""`make bench`: every speed and memory benchmark of ovss, printed as Markdown for docs/benchmarks.md."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import heads  # noqa: E402
import memory  # noqa: E402
import pipeline  # noqa: E402
import precision  # noqa: E402
import speed  # noqa: E402

if __name__ == "__main__":
    heads.main()
    pipeline.main([])
    memory.main([])
    precision.main([])
    speed.main([])
