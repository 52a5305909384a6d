"""The AWS edge: the two services' batch APIs and limits, clients and credentials, error codes.

Nothing above this package talks to boto3 or botocore directly.
"""
