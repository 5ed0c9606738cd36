"""`python -m jaxpretrain ...`: the same as the `jaxpretrain` command."""

from jaxpretrain.cli import entry_point

if __name__ == "__main__":
  entry_point()
