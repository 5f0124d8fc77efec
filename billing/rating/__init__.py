"""Rating: the rater (`rater`), the credit draw-down between its batches (`draw_down`),
re-rating a period (`rerating`), and the statements they run (`store`)."""
