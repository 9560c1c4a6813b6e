import sys

from lmm_teach.cli import main

sys.exit(main())
