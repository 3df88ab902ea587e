"""What people look at: paper-layout tables and plots from run directories, W&B logging, and the W&B comparison."""
