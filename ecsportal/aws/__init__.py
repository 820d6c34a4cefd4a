"""The only package that imports boto3. It returns plain records and raises `AwsError`s."""
