import sys

from dbt_braze.cli import main

sys.exit(main())
