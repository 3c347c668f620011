"""``python -m empmix_collector`` runs the same CLI as ``empmix-collector``."""

from empmix_collector.cli import main

if __name__ == "__main__":
    main()
