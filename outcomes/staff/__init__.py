"""Staff workflow pages beside the admin (issue 19): the patient record, the record status
dashboard and the due list with the phone worklist. Each is scoped to the user's sites like
the admin, built from a fixed number of queries, and links into the admin for every edit."""
