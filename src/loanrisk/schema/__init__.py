"""The data contract: attribute types, the schema file, checks of a table against it, inference
of a draft schema and the AWS Machine Learning import."""

from loanrisk.schema.types import Attribute, Schema, is_missing, label_of

__all__ = ["Attribute", "Schema", "is_missing", "label_of"]
