"""The pure core: prices, usage, the cost math. No I/O beyond reading the price book file."""
