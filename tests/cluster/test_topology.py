"""The test cluster itself, and how fleetlog's shard keys spread over its masters."""

import pytest

from fleetlog.keys import Keys
from tests.fixtures.cluster import MASTERS, LocalCluster

pytestmark = pytest.mark.cluster


def test_cluster_has_three_masters_each_with_a_replica(
    redis_cluster: LocalCluster, cluster_url: str
) -> None:
    assert len(redis_cluster.masters()) == MASTERS
    assert cluster_url in [node.url for node in redis_cluster.masters()]


@pytest.mark.parametrize("shards", [4, 8])
def test_shard_streams_land_on_more_than_one_master(
    redis_cluster: LocalCluster, cluster_url: str, shards: int
) -> None:
    keys = Keys()
    owners = {redis_cluster.master_of(keys.stream(shard)).port for shard in range(shards)}
    assert len(owners) > 1
