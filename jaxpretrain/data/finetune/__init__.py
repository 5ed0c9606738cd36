"""Fine-tuning data held in memory: labeled records and translation pairs, one skeleton (`base`)."""
