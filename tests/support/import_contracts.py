"""An import-linter contract type for what the built-in ones cannot say: who may import a submodule of an
external package. They see an external package only as a whole (`twilio`), so the import's own line is read."""
from importlinter import Contract, ContractCheck, fields, output


class ExternalSubmoduleContract(Contract):
    """Only `allowed_importers` import `submodule` (e.g. twilio.rest); other parts of its package stay free to use."""

    type_name = "external_submodule"

    submodule = fields.StringField()
    allowed_importers = fields.ListField(subfield=fields.StringField())

    def check(self, graph, verbose):
        package = self.submodule.split(".")[0]
        illegal = []
        for importer in sorted(graph.find_modules_that_directly_import(package)):
            if importer in self.allowed_importers:
                continue
            for detail in graph.get_import_details(importer=importer, imported=package):
                if self._names_submodule(detail["line_contents"]):
                    illegal.append((importer, detail["line_number"], detail["line_contents"]))
        return ContractCheck(kept=not illegal, warnings=None, metadata={"illegal": illegal})

    def _names_submodule(self, line):
        words = line.replace(",", " ").split()
        if words[:1] == ["from"] and len(words) > 1:
            named = words[1]
        elif words[:1] == ["import"] and len(words) > 1:
            named = words[1]
        else:
            return False
        return named == self.submodule or named.startswith(self.submodule + ".")

    def render_broken_contract(self, check):
        for importer, line_number, line in check.metadata["illegal"]:
            output.print_error(f"{importer} imports {self.submodule} (l.{line_number}: {line})", bold=False)
            output.new_line()
