"""`google.rpc.Status` and `google.rpc.BadRequest`: the error body OTLP/HTTP answers with.

Their definitions (googleapis' google/rpc/status.proto and error_details.proto, the fields used
here) are declared as descriptors in a pool of fleetlog's own, not imported from the
googleapis-common-protos package: fleetlog needs no package for two small messages, and a
private pool never clashes with that package's classes when both are loaded in one process.
Their bytes and JSON are the same as those classes', which is what clients decode.
"""

from google.protobuf import any_pb2, descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import Message

Field = descriptor_pb2.FieldDescriptorProto

POOL = descriptor_pool.DescriptorPool()


def declare() -> None:
    """Add google/rpc/status.proto (Status, BadRequest) to POOL, with the Any it needs."""
    POOL.AddSerializedFile(any_pb2.DESCRIPTOR.serialized_pb)
    proto = descriptor_pb2.FileDescriptorProto(
        name="google/rpc/status.proto",
        package="google.rpc",
        syntax="proto3",
        dependency=["google/protobuf/any.proto"],
    )
    status = proto.message_type.add(name="Status")
    add_field(status, "code", 1, Field.TYPE_INT32)
    add_field(status, "message", 2, Field.TYPE_STRING)
    add_field(status, "details", 3, Field.TYPE_MESSAGE, of=".google.protobuf.Any", repeated=True)
    bad_request = proto.message_type.add(name="BadRequest")
    violation = bad_request.nested_type.add(name="FieldViolation")
    add_field(violation, "field", 1, Field.TYPE_STRING)
    add_field(violation, "description", 2, Field.TYPE_STRING)
    add_field(violation, "reason", 3, Field.TYPE_STRING)
    add_field(
        bad_request,
        "field_violations",
        1,
        Field.TYPE_MESSAGE,
        of=".google.rpc.BadRequest.FieldViolation",
        repeated=True,
    )
    POOL.Add(proto)


def add_field(
    message: descriptor_pb2.DescriptorProto,
    name: str,
    number: int,
    kind: "Field.Type.ValueType",
    *,
    of: str = "",
    repeated: bool = False,
) -> None:
    json_name = name.split("_")[0] + "".join(part.title() for part in name.split("_")[1:])
    label = Field.LABEL_REPEATED if repeated else Field.LABEL_OPTIONAL
    field = message.field.add(name=name, number=number, type=kind, label=label, json_name=json_name)
    if of:
        field.type_name = of


def message_class(name: str) -> type[Message]:
    return message_factory.GetMessageClass(POOL.FindMessageTypeByName(name))


declare()
Status = message_class("google.rpc.Status")
BadRequest = message_class("google.rpc.BadRequest")
