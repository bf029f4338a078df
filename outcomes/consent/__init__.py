"""Electronic consent: versioned documents, consent through a personal link or on paper,
immutable records with a PDF snapshot, withdrawal and re-consent."""
