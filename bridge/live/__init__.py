"""The supervisors' live view (docs/live-view.md): the board's figures, pure, and the routes that serve them."""
