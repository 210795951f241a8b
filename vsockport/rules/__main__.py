"""`python -m vsockport.rules`: regenerate the shipped rule catalog (rules/catalog.json)."""

from vsockport.rules import write_catalog

write_catalog()
print("wrote vsockport/rules/catalog.json")
