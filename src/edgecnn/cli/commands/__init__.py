"""One module per subcommand (see edgecnn.cli.main)."""
