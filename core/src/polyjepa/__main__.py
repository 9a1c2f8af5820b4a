"""``python -m polyjepa`` (what ``torchrun -m polyjepa ...`` runs)."""

from polyjepa.cli import main

raise SystemExit(main())
