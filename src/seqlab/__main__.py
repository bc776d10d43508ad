"""``python -m seqlab ...`` (and ``torchrun ... -m seqlab train CONFIG``): the seqlab CLI."""

from seqlab.cli import main

if __name__ == "__main__":
    main()
