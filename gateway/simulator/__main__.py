import sys

from gateway.simulator import main

sys.exit(main())
