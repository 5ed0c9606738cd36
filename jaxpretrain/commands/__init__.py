"""The subcommands that sit on the library (each module is called by `jaxpretrain.cli`)."""
