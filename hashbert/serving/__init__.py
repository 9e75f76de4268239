"""Serving: a deployable index bundle, the retriever over it, conversations whose turns carry cached states,
the command-line chat loop, and the HTTP service with its session store."""
