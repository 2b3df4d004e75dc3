"""Speed of the Storage SCP receive path (issue 9): nameless files, cheap checks."""
