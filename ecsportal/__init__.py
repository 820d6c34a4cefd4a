"""ecsportal: a self-service portal for operating Amazon ECS across many AWS accounts."""
