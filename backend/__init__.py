"""todo-api: hand-written implementation of the contract in specs/api/openapi.yaml."""
