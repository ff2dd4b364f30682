"""One collector per file. Object collectors render cached text from the view (exposition.RowCache);
status collectors (backend, kubernetes) are client_python custom collectors built fresh each scrape."""
